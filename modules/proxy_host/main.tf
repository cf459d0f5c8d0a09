# The optional proxy host: squid in the region that receives changes, so the peer's senders
# can reach this region's Kinesis endpoint over a fixed address (e.g. across Direct Connect).
data "aws_partition" "current" {}

data "aws_ssm_parameter" "al2023" {
  name = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
}

locals {
  kinesis_host = "kinesis.${var.kinesis_region}.${data.aws_partition.current.dns_suffix}"
  squid_config = templatefile("${path.module}/squid.conf.tftpl", {
    port                 = var.port
    allowed_source_cidrs = var.allowed_source_cidrs
    kinesis_host         = local.kinesis_host
  })
}

data "aws_iam_policy_document" "assume_by_ec2" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.${data.aws_partition.current.dns_suffix}"]
    }
  }
}

resource "aws_iam_role" "proxy" {
  name               = var.name
  assume_role_policy = data.aws_iam_policy_document.assume_by_ec2.json
}

# Session Manager instead of SSH: no key pair, no port 22.
resource "aws_iam_role_policy_attachment" "session_manager" {
  role       = aws_iam_role.proxy.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "proxy" {
  name = var.name
  role = aws_iam_role.proxy.name
}

resource "aws_security_group" "proxy" {
  name        = var.name
  description = "squid for the peer region's replication senders"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "peer_senders" {
  for_each          = toset(var.allowed_source_cidrs)
  security_group_id = aws_security_group.proxy.id
  description       = "The peer region's senders (NAT EIP ${each.value})"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = var.port
  to_port           = var.port
}

resource "aws_vpc_security_group_egress_rule" "kinesis_tls" {
  security_group_id = aws_security_group.proxy.id
  description       = "TLS to this region's Kinesis endpoint (and the package mirror at boot)"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_instance" "proxy" {
  ami                         = data.aws_ssm_parameter.al2023.value
  instance_type               = var.instance_type
  subnet_id                   = var.subnet_id
  vpc_security_group_ids      = [aws_security_group.proxy.id]
  iam_instance_profile        = aws_iam_instance_profile.proxy.name
  monitoring                  = true
  ebs_optimized               = true
  user_data_replace_on_change = true
  user_data                   = templatefile("${path.module}/user_data.sh.tftpl", { squid_config = local.squid_config })

  metadata_options {
    http_tokens   = "required"
    http_endpoint = "enabled"
  }

  root_block_device {
    encrypted  = true
    kms_key_id = var.kms_key_arn
  }

  tags = {
    Name = var.name
  }
}

resource "aws_eip" "proxy" {
  domain   = "vpc"
  instance = aws_instance.proxy.id
}
