"""Service matters (政务服务事项): the versioned catalogue of what a citizen or an enterprise
can apply for, with each matter's guide, application form and licence."""
