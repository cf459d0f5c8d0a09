# envs/ap-southeast-1 replicating orders-sg, a table the application's own Terraform manages (it is in
# ap-southeast-1-existing-tables.account.json, the simulated account), beside the user-sg it creates.
existing_tables = ["orders-sg"]
table_map = {
  "user-cn"   = "user-sg"
  "orders-cn" = "orders-sg"
}
