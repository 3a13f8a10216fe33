"""The batch audit of past awards: readers, the polars evaluation, findings, reports."""

from service.audit import _allocator  # noqa: F401  (before polars is imported)
from service.audit.context import AuditOptions
from service.audit.readers import UnreadableInput
from service.audit.run import AuditResult, run_audit

__all__ = ["AuditOptions", "AuditResult", "UnreadableInput", "run_audit"]
