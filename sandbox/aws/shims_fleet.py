"""moto shims for fleet discovery and IAM policies (rds_iam_fleet_info, rds_iam_policy).

RDS pages describe_db_clusters and describe_db_proxies (MaxRecords 20-100, default 100, with a
Marker); moto 5.2 pages describe_db_instances only and returns every cluster and proxy in one
response, so a client that mishandles Marker would pass against moto and fail on AWS.
"""

_PAGED = (("describe_db_clusters", "DescribeDBClusters", "DBClusters", "db_cluster_identifier"),
          ("describe_db_proxies", "DescribeDBProxies", "DBProxies", "db_proxy_name"))


def _shim_paginate_clusters_and_proxies():
    from moto.core.responses import PaginatedResult
    from moto.core.utils import get_pagination_model
    from moto.rds.responses import RDSResponse

    model = get_pagination_model("rds")  # cached: the dict moto's PaginatedResult reads
    for method, operation, result_key, unique_attribute in _PAGED:
        model[operation].setdefault("unique_attribute", unique_attribute)
        original = getattr(RDSResponse, method)

        def paged(self, _original=original, _key=result_key):
            # moto's proxy result echoes the caller's Marker back: drop it, the paginator sets the real one.
            return PaginatedResult({_key: list(_original(self)._result[_key])})

        setattr(RDSResponse, method, paged)


SHIMS = (_shim_paginate_clusters_and_proxies,)
