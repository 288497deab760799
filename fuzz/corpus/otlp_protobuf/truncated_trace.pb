
Ó


service.name

my.service°
A

my.library1.0.0,
my.scope.attribute
some scope attributek