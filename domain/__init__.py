"""trialctl domain."""
