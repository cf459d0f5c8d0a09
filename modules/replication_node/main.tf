# One region's replication node: the replicated tables and their streams, the sender that ships
# their changes across the border, the stream the peer ships into, the replicator that applies
# it, and what watches them. Names, ARNs and principals come from the partition, so the same
# module plans in aws-cn and aws.
data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

data "aws_service_principal" "lambda" {
  service_name = "lambda"
}

data "aws_service_principal" "logs" {
  service_name = "logs"
}

data "aws_service_principal" "cloudwatch" {
  service_name = "cloudwatch"
}

data "aws_service_principal" "events" {
  service_name = "events"
}

locals {
  partition  = data.aws_partition.current.partition
  dns_suffix = data.aws_partition.current.dns_suffix
  region     = data.aws_region.current.region
  account    = data.aws_caller_identity.current.account_id

  # arn:<partition>:<service>:<region>:<account>: for this node's own resources.
  arn_prefix = {
    for service in ["logs", "ssm", "kinesis"] :
    service => "arn:${local.partition}:${service}:${local.region}:${local.account}"
  }

  functions = {
    sender = {
      name          = var.sender_function_name
      failure_queue = var.sender_failure_queue_name
    }
    replicator = {
      name          = var.replicator_function_name
      failure_queue = var.replicator_failure_queue_name
    }
  }
  role_names = { for function, f in local.functions : function => "${f.name}_role" }
}
