"""MusicCorp, the example estate: four services with private databases, their flows and a traffic simulator.

See docs/estate.md. Entry points: `estate.services.SERVICES` (schemas, CDC needs),
`estate.flows` (business flows), `estate.simulator.run / benchmark / bulk_load`,
`estate.canary.plant_canaries`.
"""
