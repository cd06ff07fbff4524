"""Reminders service: vaccination, check-up and activity reminders.

Pure logic lives in :mod:`reminders.dates`, :mod:`reminders.phones`,
:mod:`reminders.replies`, :mod:`reminders.schedule` and :mod:`reminders.planner`;
I/O edges are :mod:`reminders.store`, :mod:`reminders.delivery`,
:mod:`reminders.sweep` and :mod:`reminders.api`.
"""
