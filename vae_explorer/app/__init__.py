"""Streamlit helpers for the app (Home.py and pages/): the only part of the package that imports streamlit."""
