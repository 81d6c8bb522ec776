"enrollment.list: the student's courses"
from typing import Optional

from trytond.pool import Pool

from ..values import when
from .registry import Result, method


class EnrollmentResult(Result):
    course: int
    name: str
    source: str
    state: str
    start: str
    end: Optional[str]
    order: Optional[str]


@method('enrollment.list', result=list[EnrollmentResult], readonly=True)
def list_(call, params):
    """The student's courses with start and end (live ones first)"""
    Enrollment = Pool().get('course.enrollment')
    enrollments = Enrollment.search([
            ('party', '=', call.party.id),
            ('company', '=', call.company.id),
            ], order=[('start', 'DESC'), ('id', 'DESC')], limit=500)
    rows = [{
            'course': e.course.id,
            'name': e.course.name,
            'source': e.source,
            'state': e.state,
            'start': when(e.start, call.company),
            'end': when(e.end, call.company),
            'order': e.order.number if getattr(e, 'order', None) else None,
            } for e in enrollments]
    rows.sort(key=lambda r: r['state'] != 'live')
    return rows
