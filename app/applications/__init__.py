"""Applications for service matters (申请): their workflow, and later their rules and review."""
