"""Business rules, one module per resource; routers stay thin and call these."""
