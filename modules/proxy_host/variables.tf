variable "name" {
  description = "Name prefix for the proxy's resources."
  type        = string
  default     = "ddb-replication-proxy"
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
}

variable "kinesis_region" {
  description = "The region whose Kinesis endpoint the proxy forwards to: this region, where the peer's sender writes."
  type        = string
}

variable "port" {
  description = "The port squid listens on. Not 80 or 443: a public web listener in China needs an ICP filing."
  type        = number
  default     = 3128
  validation {
    condition     = !contains([80, 443], var.port)
    error_message = "Use a port other than 80 and 443 (a public web port in China needs an ICP filing)."
  }
}

variable "instance_type" {
  description = "EC2 instance type for the proxy."
  type        = string
  default     = "c6i.large"
}

variable "kms_key_arn" {
  description = "KMS key encrypting the proxy's root volume."
  type        = string
}
