"""moto shims for parameter groups and reboots (rds_iam_parameter_group, rds_iam_auth)."""

SHIMS = ()
