"""Benchmark comparison: the common way to mint a token today, a boto3 RDS client created per call.

Terms are db_user@endpoint:port; credentials and region come from the AWS_* environment.
"""
from ansible.plugins.lookup import LookupBase


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        import boto3  # pylint: disable=import-outside-toplevel

        tokens = []
        for term in terms:
            user, _, rest = term.rpartition('@')
            host, _, port = rest.rpartition(':')
            client = boto3.client('rds', region_name=host.split('.')[-4])
            tokens.append(client.generate_db_auth_token(DBHostname=host, Port=int(port), DBUsername=user))
        return tokens
