"""BENDRForecast: a BENDR-style (Kostas et al. 2021) one-step-ahead forecaster of continuous signals."""
