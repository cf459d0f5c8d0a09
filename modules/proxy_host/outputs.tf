output "proxy_url" {
  description = "What the peer region's senders set as PEER_PROXY_URL."
  value       = "http://${aws_eip.proxy.public_ip}:${var.port}"
}

output "proxy_public_ip" {
  description = "The proxy's fixed public address."
  value       = aws_eip.proxy.public_ip
}

output "squid_config" {
  description = "The squid configuration the instance runs."
  value       = local.squid_config
}

output "user_data" {
  description = "The boot script the instance runs: squid with squid_config, and automatic security updates."
  value       = local.user_data
}

output "ami_id" {
  description = "The AMI the instance was planned from (read once; later plans ignore a newer one)."
  value       = local.ami
}
