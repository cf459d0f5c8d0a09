# envs/cn-north-1 replicating orders-cn, a table the application's own Terraform manages (in
# cn-north-1-existing-kinesis-capture.account.json, with no DynamoDB stream), through Kinesis
# capture: the node enables the table's streaming destination without managing the table.
# user-cn, created here, keeps its DynamoDB stream.
existing_tables         = ["orders-cn"]
existing_tables_capture = { "orders-cn" = "kinesis" }
table_map = {
  "user-sg"   = "user-cn"
  "orders-sg" = "orders-cn"
}
