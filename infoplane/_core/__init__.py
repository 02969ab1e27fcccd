"""The leaf of infoplane: types, units, validation, tables, atomic files, the runtime (joblib, threads, rank).

Imports nothing else of infoplane; every other folder may import it. Private: no public name lives here
except what the package root re-exports (`MIResult`).
"""
