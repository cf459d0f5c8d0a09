# envs/cn-north-1 creating a table with secondary indexes, as a table adopted with
# `terraform import` declares the indexes it already has: a provisioned orders table with two
# global indexes (one projecting some attributes) and a local one.
tables = {
  "user-cn" = { hash_key = "PK" }
  "orders-cn" = {
    hash_key       = "customer_id"
    range_key      = "order_no"
    range_key_type = "N"
    billing_mode   = "PROVISIONED"
    read_capacity  = 10
    write_capacity = 5
    global_secondary_indexes = {
      "by-status" = { hash_key = "status", range_key = "placed_at", range_key_type = "N", projection_type = "KEYS_ONLY", read_capacity = 5, write_capacity = 2 }
      "by-sku"    = { hash_key = "sku", projection_type = "INCLUDE", non_key_attributes = ["quantity", "total"], read_capacity = 5, write_capacity = 2 }
    }
    local_secondary_indexes = {
      "by-placed-at" = { range_key = "placed_at", range_key_type = "N" }
    }
  }
}
table_map = {
  "user-sg"   = "user-cn"
  "orders-sg" = "orders-cn"
}
