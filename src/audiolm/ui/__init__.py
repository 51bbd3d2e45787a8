"""The web UI (``python -m audiolm.cli.webui``): listen to runs and try them in a browser.

    runs.py      what the run picker lists under the runs root (and nothing outside it), what a run is
    models.py    the one resident model: cached loading, per-request sampler and steps
    jobs.py      cooperative cancellation of the work a Stop button stops
    uploads.py   uploaded clips read with the size and duration limits
    figures.py   spectrograms, with the prompt boundary marked
    codecs.py    the codec tab's round trip, through ``audiolm.preview``
    handlers.py  one plain-Python handler per tab (``Studio``), what the tests call directly
    app.py       the Gradio page around the handlers

Every tab calls its family's one inference call, ``model.generate(request)`` (``tasks.inference``).
"""
