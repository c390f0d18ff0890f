"""The product's URLs, plus two baselines for the benchmark, served by the same server:

* `/_bench/one-query`: a Django view that runs one indexed query (a source by its slug) and
  answers a small JSON body, through the same middleware as the API;
* `/_bench/no-query`: the same without the query.
"""

from django.http import HttpRequest, JsonResponse
from django.urls import path

from autorespond.models import Source
from autorespond.urls import urlpatterns as product_urlpatterns


def one_query(request: HttpRequest) -> JsonResponse:
    found = Source.objects.filter(slug=request.GET.get("slug", "")).values_list("id").first()
    return JsonResponse({"found": found is not None})


def no_query(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"found": None})


urlpatterns = [
    path("_bench/one-query", one_query),
    path("_bench/no-query", no_query),
    *product_urlpatterns,
]
