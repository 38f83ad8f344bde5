"""Which robots.txt rule refuses a URL: a refusal names the rule, so the user can judge it.

Scrapy's robots middleware decides; this only finds the words, following RFC 9309: the group
for the most specific matching user agent (else `*`), and among its rules the longest match,
Allow winning a tie. `*` matches any run of characters and a trailing `$` the end of the path.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit


def _groups(text: str) -> list[tuple[list[str], list[tuple[str, str]]]]:
    """[(user agents, [(field, pattern)])] in file order."""
    groups: list[tuple[list[str], list[tuple[str, str]]]] = []
    agents: list[str] = []
    rules: list[tuple[str, str]] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if ":" not in line:
            continue
        field, value = (part.strip() for part in line.split(":", 1))
        field = field.lower()
        if field == "user-agent":
            if rules:  # a user-agent line after rules starts a new group
                groups.append((agents, rules))
                agents, rules = [], []
            agents.append(value.lower())
        elif field in ("allow", "disallow") and agents:
            rules.append((field, value))
    if agents:
        groups.append((agents, rules))
    return groups


def _matches(pattern: str, path: str) -> bool:
    if not pattern:
        return False
    anchored = pattern.endswith("$")
    body = re.escape(pattern.rstrip("$")).replace(r"\*", ".*")
    return re.match(body + ("$" if anchored else ""), path) is not None


def refusing_rule(robots_txt: str, user_agent: str, url: str) -> tuple[str, str] | None:
    """(the agent line's value, "Disallow: <pattern>") of the rule that refuses `url`, or None if allowed."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    token = user_agent.split("/")[0].split()[0].lower() if user_agent.strip() else "*"
    groups = _groups(robots_txt)
    named = [g for g in groups if any(a != "*" and a in token for a in g[0])]
    chosen = named or [g for g in groups if "*" in g[0]]
    rules = [rule for group in chosen for rule in group[1]]
    agent = next((a for a in chosen[0][0]), "*") if chosen else "*"
    best: tuple[int, bool, str] | None = None
    for field, pattern in rules:
        if _matches(pattern, path):
            key = (len(pattern), field == "allow", pattern)
            if best is None or key[:2] > best[:2]:
                best = key
    if best is None or best[1]:
        return None
    return agent, f"Disallow: {best[2]}"
