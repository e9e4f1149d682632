"""Score patients with the versioned model artefact: a calibrated probability and its plain-language reasons."""
