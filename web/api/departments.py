"""Departments and their members, used to route conversations to the right team."""

from flask.views import MethodView

from shared.permissions import Permission
from shared.services import departments, users
from web.auth import require_org_id, requires
from web.blueprint import Blueprint
from web.db import get_session
from web.schemas.departments import DepartmentCreateSchema, DepartmentDetailSchema, DepartmentSchema, DepartmentUpdateSchema

blp = Blueprint("departments", __name__, description="Teams of agents")


def _department(department_id):
    return departments.get_department(get_session(), org_id=require_org_id(), department_id=department_id)


@blp.route("/", strict_slashes=False)
class DepartmentList(MethodView):
    @requires(Permission.departments_read)
    @blp.response(200, DepartmentSchema(many=True))
    def get(self):
        """Every department with its member count."""
        return departments.list_departments(get_session(), org_id=require_org_id())

    @requires(Permission.departments_manage)
    @blp.arguments(DepartmentCreateSchema)
    @blp.response(201, DepartmentDetailSchema)
    @blp.alt_response(409, description="`department_name_taken`: the organization has a department of that name")
    def post(self, body):
        """Create a department; names are unique within the organization."""
        return departments.create_department(get_session(), org_id=require_org_id(), **body)


@blp.route("/<department_id>")
class DepartmentItem(MethodView):
    @requires(Permission.departments_read)
    @blp.response(200, DepartmentDetailSchema)
    def get(self, department_id):
        """One department with its members."""
        return _department(department_id)

    @requires(Permission.departments_manage)
    @blp.arguments(DepartmentUpdateSchema)
    @blp.response(200, DepartmentDetailSchema)
    @blp.alt_response(409, description="`department_name_taken`: the organization has a department of that name")
    def patch(self, body, department_id):
        """Rename or describe a department."""
        return departments.update_department(get_session(), department=_department(department_id), changes=body)

    @requires(Permission.departments_manage)
    @blp.response(204)
    def delete(self, department_id):
        """Delete a department (its members stay users)."""
        departments.delete_department(get_session(), department=_department(department_id))


@blp.route("/<department_id>/members/<user_id>")
class DepartmentMember(MethodView):
    @requires(Permission.departments_manage)
    @blp.response(200, DepartmentDetailSchema)
    def put(self, department_id, user_id):
        """Add a user to the department (a user can be in several; adding twice changes nothing)."""
        user = users.get_user(get_session(), user_id=user_id, org_id=require_org_id())
        return departments.add_member(get_session(), department=_department(department_id), user=user)

    @requires(Permission.departments_manage)
    @blp.response(200, DepartmentDetailSchema)
    def delete(self, department_id, user_id):
        """Remove a user from the department."""
        user = users.get_user(get_session(), user_id=user_id, org_id=require_org_id())
        return departments.remove_member(get_session(), department=_department(department_id), user=user)
