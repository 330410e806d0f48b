"""HTTP layer: one thin router per Harness resource; route bodies call the service."""
