"""Select, rank and allocate referrals within the lipid clinics' capacity; the referral ledger."""
