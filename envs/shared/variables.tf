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

variable "peer_writer_source_cidrs" {
  description = "The peer's senders' public addresses (NAT EIPs, or the proxy's EIP) as CIDRs: the peer writer's key then works from them only. Empty: from anywhere."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for c in var.peer_writer_source_cidrs : can(cidrhost(c, 0))])
    error_message = "peer_writer_source_cidrs must be CIDRs, e.g. [\"52.80.1.2/32\"]."
  }
  validation {
    condition     = !anytrue([for c in var.peer_writer_source_cidrs : can(cidrhost(c, 0)) && endswith(c, "/0")])
    error_message = "peer_writer_source_cidrs must not hold 0.0.0.0/0 or ::/0: a condition that admits every address is pointless. Leave the list empty for no address condition."
  }
}

variable "kms_key_administrators" {
  description = "IAM roles or users that administer the node's key but can't encrypt or decrypt with it (see modules/replication_node/kms.tf). Empty: AWS's default key policy."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for arn in var.kms_key_administrators : can(regex("^arn:[a-z-]+:iam::[0-9]{12}:(role|user)/.+$", arn))])
    error_message = "kms_key_administrators must be IAM role or user ARNs, e.g. arn:<partition>:iam::111122223333:role/KeyAdmins."
  }
}

variable "signing_keys_parameter" {
  description = "Parameter Store name of the change-signing key ring, the same in both regions. Null: defaults.json's signing_keys_parameter."
  type        = string
  default     = null
  validation {
    condition     = var.signing_keys_parameter == null || can(regex("^(/[a-zA-Z0-9_.-]+)+$", var.signing_keys_parameter))
    error_message = "signing_keys_parameter must be a Parameter Store path such as /DDBReplication/SigningKeys (starting with \"/\", not ending with one)."
  }
}

variable "max_clock_skew_seconds" {
  description = "How far ahead of the functions' clocks a version may be, in seconds (see modules/replication_node). Null: the module's 300."
  type        = number
  default     = null
  validation {
    condition     = var.max_clock_skew_seconds == null || try(var.max_clock_skew_seconds >= 1 && floor(var.max_clock_skew_seconds) == var.max_clock_skew_seconds, false)
    error_message = "max_clock_skew_seconds must be a whole number of seconds, at least 1."
  }
}

variable "accept_unsigned_changes" {
  description = "Let the replicator apply unsigned changes: only during a rolling upgrade from a release whose senders did not sign. Turn it off once both regions are upgraded."
  type        = bool
  default     = false
}

variable "replication_stream_shard_count" {
  description = "Shards of this region's replication stream. Null: on-demand."
  type        = number
  default     = null
}

variable "replication_stream_retention_hours" {
  description = "How long this region's replication stream keeps records, 24 to 8760 hours. Null: the module's 72."
  type        = number
  default     = null
  validation {
    condition     = var.replication_stream_retention_hours == null || try(var.replication_stream_retention_hours >= 24 && var.replication_stream_retention_hours <= 8760 && floor(var.replication_stream_retention_hours) == var.replication_stream_retention_hours, false)
    error_message = "replication_stream_retention_hours must be a whole number from 24 to 8760 (365 days)."
  }
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
  description = "The optional squid proxy for the peer's sender: where it runs, and the peer's NAT EIPs that may use it. ami_id pins its image (null: the newest Amazon Linux 2023 at creation, kept afterwards). Null: no proxy."
  type = object({
    vpc_id               = string
    subnet_id            = string
    allowed_source_cidrs = list(string)
    port                 = optional(number, 3128)
    ami_id               = optional(string)
  })
  default = null
}
