"""Turbofan Desktop: anomaly detection, forecasting and RUL estimation for turbofan sensor data."""

__version__ = "0.1.0"
