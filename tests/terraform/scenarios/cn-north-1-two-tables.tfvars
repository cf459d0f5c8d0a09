# envs/cn-north-1 replicating two tables, one with a composite numeric key, through one
# sender, stream and replicator.
tables = {
  "user-cn"   = { hash_key = "PK" }
  "orders-cn" = { hash_key = "customer_id", range_key = "order_no", range_key_type = "N", ttl_attribute = "expires_at" }
}
table_map = {
  "user-sg"   = "user-cn"
  "orders-sg" = "orders-cn"
}
