"""The editor-facing shot-list format.

``yaml_source`` reads YAML keeping line marks, ``schema_check`` applies shotlist.schema.json (package data),
``semantic`` checks references, media and timecodes, ``load`` turns a valid document into the typed
``types.ShotList``.
"""
