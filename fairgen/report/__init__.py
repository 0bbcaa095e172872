"""Reports: the audit, the predictions audit, the sweep and zoo pages, and their templates."""
