variable "name" {
  description = "Name prefix for the proxy's resources."
  type        = string
  default     = "ddb-replication-proxy"
  nullable    = false
}

variable "vpc_id" {
  description = "VPC the proxy runs in."
  type        = string
}

variable "subnet_id" {
  description = "Public subnet for the proxy instance (it needs a public address for the peer to reach)."
  type        = string
}

variable "allowed_source_cidrs" {
  description = "Who may use the proxy: the peer region's NAT gateway EIPs, as /32 CIDRs. Nothing else can connect."
  type        = list(string)
  validation {
    condition     = length(var.allowed_source_cidrs) > 0 && alltrue([for c in var.allowed_source_cidrs : can(cidrhost(c, 0))])
    error_message = "allowed_source_cidrs must list at least one CIDR, e.g. [\"52.1.2.3/32\"]."
  }
  validation {
    condition     = !anytrue([for c in var.allowed_source_cidrs : can(cidrhost(c, 0)) && endswith(c, "/0")])
    error_message = "allowed_source_cidrs must not include 0.0.0.0/0 or ::/0: the proxy would tunnel to this region's Kinesis for anyone on the internet. List the peer's NAT EIPs as /32 CIDRs."
  }
}

variable "kinesis_region" {
  description = "The region whose Kinesis endpoint the proxy forwards to: this region, where the peer's sender writes."
  type        = string
}

variable "port" {
  description = "The port squid listens on, 1 to 65535 but not 80 or 443: a public web listener in China needs an ICP filing."
  type        = number
  default     = 3128
  nullable    = false
  validation {
    condition     = var.port >= 1 && var.port <= 65535 && floor(var.port) == var.port
    error_message = "port must be a whole number from 1 to 65535."
  }
  validation {
    condition     = !contains([80, 443], var.port)
    error_message = "Use a port other than 80 and 443 (a public web port in China needs an ICP filing)."
  }
}

variable "instance_type" {
  description = "EC2 instance type for the proxy."
  type        = string
  default     = "c6i.large"
  nullable    = false
}

variable "kms_key_arn" {
  description = "KMS key encrypting the proxy's root volume."
  type        = string
}

variable "ami_id" {
  description = "Pin the proxy to this AMI. Null: the newest Amazon Linux 2023 (x86_64) when the instance is created, kept afterwards. Changing it replaces the instance: the deliberate way to roll to another image."
  type        = string
  default     = null
  validation {
    condition     = var.ami_id == null || can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "ami_id must be an AMI ID such as ami-0123456789abcdef0."
  }
}

variable "alarm_actions" {
  description = "ARNs notified when the instance is recovered (the node's alarm topic, say), besides the recover action itself."
  type        = list(string)
  default     = []
}
