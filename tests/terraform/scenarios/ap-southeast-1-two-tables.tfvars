# envs/ap-southeast-1 replicating two tables, one with a composite numeric key, through one
# sender, stream and replicator.
tables = {
  "user-sg"   = { hash_key = "PK" }
  "orders-sg" = { hash_key = "customer_id", range_key = "order_no", range_key_type = "N", ttl_attribute = "expires_at" }
}
table_map = {
  "user-cn"   = "user-sg"
  "orders-cn" = "orders-sg"
}
