"""HTTP routers, one per resource; bodies call services."""
