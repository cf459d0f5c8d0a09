# envs/cn-north-1 with user-cn half-way through a switch of capture: "both" keeps its DynamoDB-stream
# mapping and adds its Kinesis streaming destination into the capture stream, which the sender
# reads too; orders-cn is read from its DynamoDB stream only.
tables = {
  "user-cn"   = { hash_key = "PK", capture = "both" }
  "orders-cn" = { hash_key = "customer_id", range_key = "order_no", range_key_type = "N" }
}
table_map = {
  "user-sg"   = "user-cn"
  "orders-sg" = "orders-cn"
}
