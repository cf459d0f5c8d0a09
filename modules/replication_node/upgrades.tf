# What earlier releases of this module left in state, and what becomes of it on upgrade.

# Releases before the tools owned every secret created the peer's key parameters with a
# placeholder. Terraform forgets them without deleting them, so the keys stored in them keep
# working; see README "Upgrading a deployment that created the peer-key parameters" for the
# one-time clean-up of the secret the old state may hold.
removed {
  from = aws_ssm_parameter.peer_keys

  lifecycle {
    destroy = false
  }
}
