"""The documentation crawler workload (WORKLOADS.md section 4): polite,
SSRF-safe crawls of documentation sites into clean Markdown, with exports."""
