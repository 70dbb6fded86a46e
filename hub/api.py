"""Every domain's router, in one place."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.routing import Mount

from hub.audit.endpoints import admin_router as audit_admin_router
from hub.audit.endpoints import export_router as audit_export_router
from hub.audit.endpoints import router as audit_router
from hub.audit.endpoints import text_router as audit_text_router
from hub.connections.endpoints import router as connections_router
from hub.console.endpoints import routes as console_routes
from hub.coverage.endpoints import router as coverage_router
from hub.exercises.endpoints import router as exercises_router
from hub.incidents.endpoints import router as incidents_router
from hub.intel.admin_endpoints import router as intel_admin_router
from hub.intel.endpoints import router as intel_router
from hub.knowledge.endpoints import admin_router as knowledge_admin_router
from hub.knowledge.endpoints import public_router as knowledge_public_router
from hub.knowledge.endpoints import router as knowledge_router
from hub.lineage.endpoints import router as lineage_router
from hub.misp_compat.endpoints import router as misp_router
from hub.notifications.endpoints import router as notifications_router
from hub.ops.endpoints import router as ops_router
from hub.partners.endpoints import me_router
from hub.partners.endpoints import router as partners_router
from hub.taxii.endpoints import router as taxii_router

router = APIRouter()
router.include_router(ops_router)
router.include_router(me_router)
router.include_router(partners_router)
router.include_router(intel_router)
router.include_router(intel_admin_router)
router.include_router(misp_router)
router.include_router(taxii_router)
router.include_router(connections_router)
router.include_router(notifications_router)
router.include_router(lineage_router)
router.include_router(audit_text_router)
router.include_router(audit_router)
router.include_router(audit_admin_router)
router.include_router(audit_export_router)
router.include_router(coverage_router)
router.include_router(incidents_router)
router.include_router(knowledge_router)
router.include_router(knowledge_admin_router)
router.include_router(knowledge_public_router)
router.include_router(exercises_router)
# The console is HTML for browsers, signed in by a session cookie rather than a key header:
# plain Starlette routes under one mount, outside the REST route class.
router.routes.append(Mount("/console", routes=console_routes, name="console"))
