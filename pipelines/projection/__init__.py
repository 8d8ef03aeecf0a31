"""Projections: the service-owned mapping from private source rows to contract rows.

See docs/projection.md for the file format. Public API:
  load_projection(path) -> Projection; load_projections(connectors_root) / load_estate_projections(estate) -> {topic: TableProjection}
  Projection.project(source_table, row) / TableProjection.project(row) -> {target: {column: value}}
  validate(row, contract_columns, table) -> tuple; compile_validator; column_checker
"""

from pipelines.projection.errors import ProjectionError
from pipelines.projection.loader import (
    load_estate_projections,
    load_projection,
    load_projections,
    load_service_projections,
    parse_projection,
)
from pipelines.projection.model import Projection, TableProjection, TargetProjection
from pipelines.projection.validate import (
    ContractColumnLike,
    ContractLike,
    ContractViolation,
    column_checker,
    compile_validator,
    validate,
)

__all__ = [
    "ContractColumnLike",
    "ContractLike",
    "ContractViolation",
    "Projection",
    "ProjectionError",
    "TableProjection",
    "TargetProjection",
    "column_checker",
    "compile_validator",
    "load_estate_projections",
    "load_projection",
    "load_projections",
    "load_service_projections",
    "parse_projection",
    "validate",
]
