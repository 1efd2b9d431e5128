"""trialctl protocols."""
