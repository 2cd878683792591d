// Times are stored in UTC; the server renders them in the zone kept here.
(function () {
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (zone && document.cookie.indexOf("operator_tz=" + zone) === -1) {
    document.cookie =
      "operator_tz=" + zone + "; path=/; SameSite=Lax; max-age=31536000";
  }
})();
