# The optional proxy host: squid in the region that receives changes, so the peer's senders
# can reach this region's Kinesis endpoint over a fixed address (e.g. across Direct Connect).
data "aws_partition" "current" {}
data "aws_region" "current" {}

# The newest Amazon Linux 2023 AMI, read when the instance is created (not when ami_id pins one).
# Later plans ignore the AMI (the instance's lifecycle below), so a new release of the image
# never replaces the proxy by surprise; the running host takes security updates in place.
data "aws_ssm_parameter" "al2023" {
  count = var.ami_id == null ? 1 : 0
  name  = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
}

locals {
  kinesis_host = "kinesis.${var.kinesis_region}.${data.aws_partition.current.dns_suffix}"
  squid_config = templatefile("${path.module}/squid.conf.tftpl", {
    port                 = var.port
    allowed_source_cidrs = var.allowed_source_cidrs
    kinesis_host         = local.kinesis_host
  })
  user_data = templatefile("${path.module}/user_data.sh.tftpl", { squid_config = local.squid_config })
  # Not a secret: a public image ID (the data source marks `value` sensitive regardless).
  ami = coalesce(var.ami_id, one(data.aws_ssm_parameter.al2023[*].insecure_value))
}

# Changing ami_id (pinning an image, or unpinning to take the newest) is the deliberate way to
# roll the instance onto another AMI: it replaces the instance, whose AMI is otherwise ignored.
resource "terraform_data" "ami_choice" {
  input = var.ami_id
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
  ami                         = local.ami
  instance_type               = var.instance_type
  subnet_id                   = var.subnet_id
  vpc_security_group_ids      = [aws_security_group.proxy.id]
  iam_instance_profile        = aws_iam_instance_profile.proxy.name
  monitoring                  = true
  ebs_optimized               = true
  user_data_replace_on_change = true
  user_data                   = local.user_data

  # EC2 moves the instance to healthy hardware when its host fails (simplified automatic
  # recovery); the alarm below does the same sooner, and says so.
  maintenance_options {
    auto_recovery = "default"
  }

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

  lifecycle {
    ignore_changes       = [ami]
    replace_triggered_by = [terraform_data.ami_choice]
  }
}

# When the host fails its system status check two minutes running, EC2 recovers the instance onto
# other hardware: same instance ID, private address and Elastic IP, so proxy_url stays valid.
resource "aws_cloudwatch_metric_alarm" "recover" {
  alarm_name          = "${var.name}-recover"
  alarm_description   = "The proxy's host failed its system status check: EC2 recovers the instance onto healthy hardware."
  namespace           = "AWS/EC2"
  metric_name         = "StatusCheckFailed_System"
  dimensions          = { InstanceId = aws_instance.proxy.id }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 2
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "missing"
  alarm_actions       = concat(["arn:${data.aws_partition.current.partition}:automate:${data.aws_region.current.region}:ec2:recover"], var.alarm_actions)
  ok_actions          = var.alarm_actions
}

resource "aws_eip" "proxy" {
  domain   = "vpc"
  instance = aws_instance.proxy.id
}
