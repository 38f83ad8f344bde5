"""`anigan crawl`: fill the raw folder from a booru (the demo booru by default)."""

from __future__ import annotations

import logging
import sys

import click

from anigan.command import AniganContext, pass_anigan
from anigan.params.crawl import SOURCES
from anigan.progress import progress_bar
from crawler.crawl import CrawlSummary, Progress, run_crawl
from crawler.rawfolder import MANIFEST, REJECTS, SUMMARY


def _log_level() -> str:
    """The worker logs as verbosely as `anigan -v/-vv` asked for."""
    level = logging.getLogger().getEffectiveLevel()
    return "DEBUG" if level <= logging.DEBUG else "INFO" if level <= logging.INFO else "WARNING"


# Exit code of a crawl that stopped early on failures a rerun may fix (0: finished or at the limit;
# 2: a configuration error, one line; 130: interrupted).
INCOMPLETE = 1

STOPPED = {
    "finished": "finished",
    "limit": "reached the limit",
    "incomplete": "stopped early, incomplete",
    "interrupted": "interrupted",
    "killed": "killed",
    "nothing_to_do": "nothing to do",
}


def format_summary(summary: CrawlSummary) -> list[str]:
    """The lines `anigan crawl` prints at the end."""
    how = STOPPED.get(summary.stopped, summary.stopped)
    lines = [
        f"{summary.kept} images kept in {summary.output} ({summary.new} new this run), limit {summary.limit}: "
        f"{how} after {summary.seconds:.1f} s" + (f", {summary.rate:.1f} new images/s" if summary.new else "")
    ]
    if summary.posts > summary.kept:
        lines.append(f"{summary.posts} posts; {summary.posts - summary.kept} with the same bytes as another post (exact duplicates, stored once)")
    if summary.rejected:
        lines.append(
            "rejected: " + ", ".join(f"{n} {reason}" for reason, n in summary.rejected.items())
            + f" ({summary.rejected_now} this run; see {summary.output}/{REJECTS})"
        )
    if summary.skipped:
        lines.append("skipped: " + ", ".join(f"{n} {reason}" for reason, n in summary.skipped.items()))
    if summary.dropped:
        lines.append("dropped from an earlier run for the current params: " + ", ".join(f"{n} {k}" for k, n in summary.dropped.items()))
    if summary.failed_pages:
        lines.append(
            f"stopped early: {len(summary.failed_pages)} listing page(s) failed after every retry "
            "(server or network errors); run the same command again to resume from there"
        )
    if summary.cut_short:
        lines.append(f"incomplete: the site's listing was cut short ({summary.cut_short})")
    if summary.stopped == "interrupted":
        lines.append("stopped early: run the same command again to resume")
    lines.append(f"manifest {summary.output}/{MANIFEST}, summary {summary.output}/{SUMMARY}")
    return lines


@click.command("crawl")
@click.option("--source", type=click.Choice(SOURCES), default=None, help="Booru to crawl [crawl.source].")
@click.option("--base-url", default=None, metavar="URL", help="Another site speaking the source's API [crawl.base_url].")
@click.option("--folder", default=None, metavar="DIR", help="With --source folder: the folder of images to import [crawl.folder].")
@click.option("--tags", default=None, help='Tag query as typed on the site, e.g. "1girl solo" [crawl.tags].')
@click.option("--limit", type=int, default=None, help="Images to keep in total, across resumed runs [crawl.limit].")
@click.option("--concurrency", type=int, default=None, help="Concurrent requests to the site [crawl.concurrency].")
@click.option("--delay", "download_delay", type=float, default=None, help="Seconds between requests [crawl.download_delay].")
@click.option("--user-agent", default=None, help="User-Agent header; say who you are [crawl.user_agent].")
@click.option("--scheduler", type=click.Choice(["memory", "redis"]), default=None, help="redis: share one queue between processes [crawl.scheduler].")
@click.option("--redis-url", default=None, metavar="URL", help="Redis for --scheduler redis [crawl.redis_url].")
@click.option("--out", "output", default=None, metavar="DIR", help="Output folder [paths.raw].")
@pass_anigan
def crawl_command(ctx: AniganContext, source, base_url, folder, tags, limit, concurrency, download_delay, user_agent, scheduler, redis_url, output) -> None:
    """Crawl a booru into the raw folder: images, manifest.jsonl, rejects.jsonl, crawl.json.

    Polite by default (robots.txt, one site's domains, AutoThrottle, Retry-After). Ctrl-C stops
    gracefully; running the same command again resumes without fetching anything twice.
    Exit codes: 0 finished or at the limit, 1 stopped early (run again to resume), 2 a
    configuration error (robots.txt, credentials, params), 130 interrupted.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    params = ctx.params(
        **{
            "crawl.source": source,
            "crawl.base_url": base_url,
            "crawl.folder": folder,
            "crawl.tags": tags,
            "crawl.limit": limit,
            "crawl.concurrency": concurrency,
            "crawl.download_delay": download_delay,
            "crawl.user_agent": user_agent,
            "crawl.scheduler": scheduler,
            "crawl.redis_url": redis_url,
            "paths.raw": output,
        }
    )
    columns = (
        TextColumn("crawling {task.fields[source]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("images · {task.fields[rate]:.1f}/s · {task.fields[rejected]} rejected"),
        TimeElapsedColumn(),
    )
    with progress_bar(*columns) as bar:
        task = bar.add_task("crawl", total=params.crawl.limit, source=params.crawl.source, rate=0.0, rejected=0)

        def show(p: Progress) -> None:
            bar.update(task, completed=p.kept, rate=p.rate, rejected=p.rejected)

        summary = run_crawl(params, on_progress=show, log_level=_log_level())
    for line in format_summary(summary):
        click.echo(line)
    if summary.stopped == "interrupted":
        sys.exit(130)
    if summary.stopped == "incomplete":
        # Not done: a pipeline must stop here rather than go on with part of the data.
        sys.exit(INCOMPLETE)
