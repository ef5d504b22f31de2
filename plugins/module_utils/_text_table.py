# Copyright: Contributors to the rdsiam.auth project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Aligned text tables for the console summaries of the playbooks (onboarding, offboarding, audit).

This is a private helper of the rdsiam.auth collection, for internal use only.
Its names and behaviour may change without notice; do not import it from other collections.
"""

from __future__ import annotations


def aligned_lines(columns, rows):
    """rows (dicts) as aligned text lines, header first then a rule; columns is ((key, title), ...)."""
    cells = [[title for _key, title in columns]]
    cells += [[str(row.get(key, '')) for key, _title in columns] for row in rows]
    widths = [max(len(line[index]) for line in cells) for index in range(len(columns))]
    lines = [' | '.join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in cells]
    lines.insert(1, '-+-'.join('-' * width for width in widths))
    return lines
