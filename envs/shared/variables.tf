# Shared by envs/cn-north-1 and envs/ap-southeast-1 through symlinks (see main.tf).

variable "profile" {
  description = "AWS CLI profile of this region's account. Null: the usual credential chain."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = { project = "ddb-replication" }
}

variable "tables" {
  description = "The replicated tables and their keys (see modules/replication_node). Null: defaults.json's tables, keyed on PK (S)."
  type = map(object({
    hash_key       = string
    hash_key_type  = optional(string, "S")
    range_key      = optional(string)
    range_key_type = optional(string, "S")
    billing_mode   = optional(string, "PAY_PER_REQUEST")
    read_capacity  = optional(number)
    write_capacity = optional(number)
    ttl_attribute  = optional(string)
  }))
  default = null
}

variable "table_map" {
  description = "Each peer table, mapped to the table here that receives its changes. Null: defaults.json's."
  type        = map(string)
  default     = null
}

variable "peer_proxy_url" {
  description = "The peer's proxy (its proxy_url output), if the sender goes through one."
  type        = string
  default     = null
}

variable "peer_endpoint_url" {
  description = "Override of the peer's Kinesis endpoint URL."
  type        = string
  default     = null
}

variable "replication_stream_shard_count" {
  description = "Shards of this region's replication stream. Null: on-demand."
  type        = number
  default     = null
}

variable "dist_dir" {
  description = "Where tools/build_lambdas.py wrote the zips. Null: the repository's dist/."
  type        = string
  default     = null
}

variable "lambda_architecture" {
  description = "x86_64 or arm64, as built."
  type        = string
  default     = "x86_64"
}

variable "sender_mapping" {
  description = "Overrides of the sender's mapping settings (batch_size, parallelization_factor, maximum_retry_attempts, ...)."
  type        = any
  default     = {}
}

variable "replicator_mapping" {
  description = "Overrides of the replicator's mapping settings."
  type        = any
  default     = {}
}

variable "vpc_subnet_ids" {
  description = "Private subnets for the functions. Empty: no VPC."
  type        = list(string)
  default     = []
}

variable "vpc_security_group_ids" {
  description = "Security groups for the functions in a VPC."
  type        = list(string)
  default     = []
}

variable "alarm_emails" {
  description = "Who gets the alarms."
  type        = list(string)
  default     = []
}

variable "proxy" {
  description = "The optional squid proxy for the peer's sender: where it runs, and the peer's NAT EIPs that may use it. Null: no proxy."
  type = object({
    vpc_id               = string
    subnet_id            = string
    allowed_source_cidrs = list(string)
    port                 = optional(number, 3128)
  })
  default = null
}
