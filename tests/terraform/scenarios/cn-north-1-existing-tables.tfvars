# envs/cn-north-1 replicating orders-cn, a table the application's own Terraform manages (it is in
# cn-north-1-existing-tables.account.json, the simulated account), beside the user-cn it creates.
existing_tables = ["orders-cn"]
table_map = {
  "user-sg"   = "user-cn"
  "orders-sg" = "orders-cn"
}
