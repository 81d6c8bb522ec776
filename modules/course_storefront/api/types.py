"Param types shared by the methods' declarations"
from typing import Annotated

from pydantic import Field, StringConstraints

MAX_ID = 2 ** 31 - 1

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Page = Annotated[int, Field(ge=1, le=10_000)]
Size = Annotated[int, Field(ge=1, le=50)]
Points = Annotated[int, Field(ge=0, le=10 ** 9)]
Email = Annotated[str, StringConstraints(
        strip_whitespace=True, to_lower=True, min_length=3, max_length=254,
        pattern=r'^[^@\s]+@[^@\s]+\.[^@\s]+$')]
Password = Annotated[str, StringConstraints(min_length=8, max_length=128)]
Name = Annotated[str, StringConstraints(
        strip_whitespace=True, min_length=1, max_length=100)]
Text = Annotated[str, StringConstraints(max_length=100)]
OrderNumber = Annotated[str, StringConstraints(
        strip_whitespace=True, min_length=1, max_length=40)]
Money = Annotated[str, StringConstraints(
        pattern=r'^\d{1,12}(\.\d{1,4})?$')]
