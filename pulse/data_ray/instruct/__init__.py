"""The instruction builder (``pulse build``): records + images -> ECGInstruct-style instruction data.

One stage per module: :mod:`plan` (per-source routing), :mod:`templates`, :mod:`ecgqa`,
:mod:`translate`, :mod:`synthesize`, :mod:`validate`, :mod:`faithfulness`, :mod:`judge`,
:mod:`balance`, :mod:`dedupe`, :mod:`write` and :mod:`stats`; :mod:`job` runs them.
"""
