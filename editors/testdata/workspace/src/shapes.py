"""Shapes for the editor integration tests."""


def area(width, height):
    return width * height


def describe(width, height):
    return f"{width}x{height} has area {area(width, height)}"
