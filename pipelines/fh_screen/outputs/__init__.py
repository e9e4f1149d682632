"""What people read: worklists (HTML, PDF, CSV, FHIR), cascade letters and the evaluator report. Outputs take frames and view models."""
