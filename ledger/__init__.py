"""trialctl ledger."""
