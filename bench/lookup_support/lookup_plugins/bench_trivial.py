"""Benchmark baseline: a lookup that does nothing but return its terms (the cost of calling any lookup)."""
from ansible.plugins.lookup import LookupBase


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        return list(terms)
