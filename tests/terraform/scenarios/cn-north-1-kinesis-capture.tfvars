# envs/cn-north-1 with user-cn captured through Kinesis (Kinesis Data Streams for DynamoDB into the
# node's capture stream, kept two weeks) beside orders-cn read from its DynamoDB stream, as before.
tables = {
  "user-cn"   = { hash_key = "PK", capture = "kinesis" }
  "orders-cn" = { hash_key = "customer_id", range_key = "order_no", range_key_type = "N" }
}
table_map = {
  "user-sg"   = "user-cn"
  "orders-sg" = "orders-cn"
}
capture_stream_retention_hours = 336
